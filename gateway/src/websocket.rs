//! `/ws`: the same subscription, spoken as proto3 JSON over a WebSocket, one message per text
//! frame. The client sends a `SubscribeRequest` (and may send another at any time to change it);
//! the server sends `SubscribeResponse`s. A bad frame gets an `error` response and the socket
//! stays open. Pings find dead peers; a peer that stops reading only ever costs its own queue.
//!
//! A client that asks for the subprotocol [`BATCH_PROTOCOL`] gets each text frame as a JSON array
//! of the `SubscribeResponse`s ready at that moment instead: at thousands of events per second a
//! browser spends far less on a few large frames than on one frame per event.
//!
//! With subscriber tokens required, the token comes as a subprotocol or a first frame (see
//! [`crate::auth`]); a socket that has not subscribed within `--ws-subscribe-timeout` is closed.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension,
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes},
    },
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use streamweaver_proto::v1::{
    StreamError, SubscribeRequest, SubscribeResponse, subscribe_response::Kind,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{AuthError, SocketAuth, SubscriberAuth},
    filter::Filter,
    hub::{Hub, Subscription},
    metrics::{Metrics, Transport},
    serve::ConnectionInfo,
};

/// Largest frame a client may send; a `SubscribeRequest` is small.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The subprotocol that asks for JSON arrays of responses, one array per frame.
pub const BATCH_PROTOCOL: &str = "streamweaver.v1.batch";
/// The subprotocol of the default, one response per frame: for clients that must offer one
/// (a browser offering a token subprotocol needs one the server selects).
pub const JSON_PROTOCOL: &str = "streamweaver.v1.json";
/// Read buffer of a socket: client frames are small `SubscribeRequest`s, and an idle socket
/// should cost little (tungstenite's default is 128 KiB). Larger frames grow it as needed.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Most responses in one batched frame.
const MAX_BATCH: usize = 256;
/// WebSocket close code "going away", sent when the gateway shuts down.
const GOING_AWAY: u16 = 1001;
/// WebSocket close code "policy violation": no subscription in time, or the token expired.
const POLICY_VIOLATION: u16 = 1008;

/// What the `/ws` handler needs.
#[derive(Clone)]
pub struct WebSocketState {
    /// The hub to subscribe to.
    pub hub: Arc<Hub>,
    /// Where refusals are counted.
    pub metrics: Metrics,
    /// Who may subscribe.
    pub auth: Arc<SubscriberAuth>,
    /// A socket with no subscription this long after opening is closed.
    pub subscribe_timeout: Duration,
    /// Allowed browser origins; empty means any.
    pub allowed_origins: Arc<[String]>,
    /// How often to ping.
    pub ping_interval: Duration,
    /// Ends open sockets when the gateway stops.
    pub shutdown: CancellationToken,
}

/// Checks origin and credential, then upgrades the connection.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<WebSocketState>,
    connection: Option<Extension<ConnectionInfo>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let endpoint = Transport::Websocket.name();
    // Browsers always send Origin; programs usually do not, and are not subject to CSRF.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !state.allowed_origins.is_empty()
        && !state
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
    {
        state.metrics.refuse(endpoint, "origin_not_allowed");
        return (
            StatusCode::FORBIDDEN,
            format!("origin {origin} is not allowed\n"),
        )
            .into_response();
    }
    let auth = match SocketAuth::at_upgrade(state.auth.clone(), &uri, &headers) {
        Ok(auth) => auth,
        Err(error) => {
            state.metrics.refuse(endpoint, error.reason());
            let status = match error {
                AuthError::TokenInUrl => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            };
            return (status, format!("{error}\n")).into_response();
        }
    };
    // Never selects a token subprotocol: the token is not echoed back.
    let ws = ws.protocols([BATCH_PROTOCOL, JSON_PROTOCOL]);
    let batch = if ws
        .selected_protocol()
        .is_some_and(|protocol| protocol == BATCH_PROTOCOL)
    {
        MAX_BATCH
    } else {
        1
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            serve(sink, stream, state, batch, auth).await;
            // The connection's admission place is held until the socket ends.
            drop(connection);
        })
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

/// Serves one socket until the peer leaves, goes silent, or the gateway stops, sending up to
/// `batch` responses per frame (1: one object per frame). Generic over the socket halves so
/// tests can drive it without a network.
pub async fn serve<S, R, E>(
    mut sink: S,
    mut stream: R,
    state: WebSocketState,
    batch: usize,
    mut auth: SocketAuth,
) where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let endpoint = Transport::Websocket.name();
    let batched = batch > 1;
    let mut subscription: Option<Subscription> = None;
    let mut ping = tokio::time::interval(state.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    let silent_limit = state.ping_interval * 3;
    let subscribe_by = Instant::now() + state.subscribe_timeout;
    let mut subscribed = false;

    loop {
        let outgoing = tokio::select! {
            () = state.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(Some(CloseFrame {
                    code: GOING_AWAY,
                    reason: Utf8Bytes::from_static("gateway is shutting down"),
                }))).await;
                break;
            }
            () = tokio::time::sleep_until(subscribe_by), if !subscribed => {
                state.metrics.refuse(endpoint, "no_subscription");
                let reason = format!("no SubscribeRequest within {:?}", state.subscribe_timeout);
                let _ = sink.send(Message::Close(Some(CloseFrame {
                    code: POLICY_VIOLATION,
                    reason: Utf8Bytes::from(reason),
                }))).await;
                break;
            }
            () = sleep_until_expiry(&auth) => {
                state.metrics.refuse(endpoint, AuthError::Expired.reason());
                let error = AuthError::Expired;
                let _ = sink.send(to_frames(&[error_response(error.code_name(), error.to_string())], batched)).await;
                let _ = sink.send(Message::Close(Some(CloseFrame {
                    code: POLICY_VIOLATION,
                    reason: Utf8Bytes::from_static("the token has expired"),
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
                    Some(Ok(Message::Text(text))) => {
                        if let Some(outcome) = auth.authorization_frame(&text) {
                            match outcome {
                                Ok(()) => continue,
                                Err(error) => {
                                    state.metrics.refuse(endpoint, error.reason());
                                    to_frames(&[error_response(error.code_name(), error.to_string())], batched)
                                }
                            }
                        } else {
                            match parse_request(&text, &auth) {
                                Ok((filter, request)) => {
                                    auth.subscribed(&request);
                                    subscribed = true;
                                    // Replacing the subscription drops the old one at once.
                                    subscription = Some(state.hub.subscribe(filter, &request.resume_from, Transport::Websocket));
                                    continue;
                                }
                                Err((code, reason, message)) => {
                                    state.metrics.refuse(endpoint, reason);
                                    to_frames(&[error_response(code, message)], batched)
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        state.metrics.refuse(endpoint, "binary_frame");
                        let message = "binary frames are not accepted: send a SubscribeRequest as proto3 JSON text";
                        to_frames(&[error_response("INVALID_ARGUMENT", message.into())], batched)
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
                    to_frames(&responses, batched)
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

/// Resolves when the socket's token expires; never without one.
async fn sleep_until_expiry(auth: &SocketAuth) {
    match auth.deadline() {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Parses a text frame into a checked filter the socket's token allows (narrowing "all topics"
/// to the allowed ones), or a status code name, a metrics reason and a message for the client.
fn parse_request(
    text: &str,
    auth: &SocketAuth,
) -> Result<(Filter, SubscribeRequest), (&'static str, &'static str, String)> {
    let mut request: SubscribeRequest = serde_json::from_str(text).map_err(|error| {
        (
            "INVALID_ARGUMENT",
            "malformed_request",
            format!("malformed SubscribeRequest: {error}"),
        )
    })?;
    auth.authorize(&mut request)
        .map_err(|error| (error.code_name(), error.reason(), error.to_string()))?;
    let filter = Filter::from_request(&request)
        .map_err(|error| ("INVALID_ARGUMENT", error.reason(), error.to_string()))?;
    Ok((filter, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_in_the_proto3_json_mapping() {
        let open = SocketAuth::open();
        let (_, request) = parse_request(
            r#"{"topics":["server_logs"],"logLevels":["LOG_LEVEL_ERROR"],"resumeFrom":[{"topic":"server_logs","partition":1,"offset":"42"}]}"#,
            &open,
        )
        .expect("valid");
        assert_eq!(request.topics, vec!["server_logs"]);
        assert_eq!(request.log_levels, vec![4]);
        assert_eq!(request.resume_from[0].offset, 42);
        assert!(parse_request("{}", &open).is_ok());
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let open = SocketAuth::open();
        let (code, reason, message) = parse_request("{not json", &open).expect_err("malformed");
        assert_eq!(code, "INVALID_ARGUMENT");
        assert_eq!(reason, "malformed_request");
        assert!(
            message.starts_with("malformed SubscribeRequest: "),
            "{message}"
        );
        let (_, reason, message) =
            parse_request(r#"{"topics":["nope"]}"#, &open).expect_err("unknown topic");
        assert_eq!(reason, "unknown_topic");
        assert!(message.contains("\"nope\""), "{message}");
        let (_, _, message) =
            parse_request(r#"{"logLevels":["LOUD"]}"#, &open).expect_err("unknown level");
        assert!(message.contains("LOUD"), "{message}");
    }
}
